import { Wizard } from './Wizard.tsx';
import { onboardingSteps } from './hostSteps.ts';
import { initialHostWizard, persistedPart } from './state.ts';
import { createWizardStore } from './wizard.ts';

/**
 * Kept at module level and in the tab's sessionStorage: leaving the section and coming back, or
 * reloading the page, resumes where the user was.
 */
export const onboardingStore = createWizardStore('welcome', () => initialHostWizard(), {
  key: 'fluid.onboarding',
  pick: persistedPart,
});

export function OnboardingView() {
  return (
    <div className="page-pad narrow">
      <Wizard
        steps={onboardingSteps}
        store={onboardingStore}
        label="Onboarding"
        onFinish={() => onboardingStore.reset()}
      />
    </div>
  );
}
