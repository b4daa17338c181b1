import { Wizard } from './Wizard.tsx';
import { onboardingSteps } from './hostSteps.ts';
import { initialHostWizard } from './state.ts';
import { createWizardStore } from './wizard.ts';

/** Kept at module level: leaving the section and coming back resumes where the user was. */
export const onboardingStore = createWizardStore('welcome', () => initialHostWizard());

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
